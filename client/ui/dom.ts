// Small DOM helpers. They only ever set text via textContent and attributes via
// setAttribute, never HTML (ASVS 3.2.2) — client/render.ts is the one place that does.

/** The element with this id, checked to be of the expected type (a typo fails at start-up). */
export function byId<T extends HTMLElement>(id: string, type: { new (): T; prototype: T }): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`Parley: #${id} is missing from index.html or is not a ${type.name}.`);
  return element;
}

type Props = {
  className?: string;
  text?: string;
  attrs?: Record<string, string>;
};

/** Create an element with a class, text and attributes, then append children. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Node[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (props.className) element.className = props.className;
  if (props.text !== undefined) element.textContent = props.text;
  for (const [name, value] of Object.entries(props.attrs ?? {})) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

/**
 * Mark a form busy while its request is in flight: buttons are disabled (no double
 * submit), inputs only made read-only so the focused one keeps focus.
 */
export function setBusy(form: HTMLFormElement, busy: boolean): void {
  form.setAttribute('aria-busy', String(busy));
  for (const button of form.querySelectorAll('button')) button.disabled = busy;
  for (const input of form.querySelectorAll('input')) input.readOnly = busy;
}
