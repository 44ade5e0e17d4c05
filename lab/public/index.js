// The overview page only fills in origins and links (common.js does that on import).
import './common.js';
