// The per-turn write batcher: a socket that was sent frames during this event-loop turn is
// flushed once, in the check phase (setImmediate), with everything it was sent — one TLS write
// instead of one per frame (docs/decisions/009-fan-out-write-coalescing.md).

/** Anything with frames to write at the end of the turn. */
export type Flushable = { flush(): void };

/** Sockets with frames queued this turn. */
let dirty: Flushable[] = [];
/** The other list, swapped in at each flush: no array is allocated per turn. */
let flushing: Flushable[] = [];
let scheduled = false;

function flushAll(): void {
  scheduled = false;
  [flushing, dirty] = [dirty, flushing];
  for (const item of flushing) item.flush();
  flushing.length = 0;
}

/** Flush `item` at the end of this turn. Call once per turn per item: when its queue goes from empty to not. */
export function flushAtEndOfTurn(item: Flushable): void {
  dirty.push(item);
  if (!scheduled) {
    scheduled = true;
    setImmediate(flushAll);
  }
}
