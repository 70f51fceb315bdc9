/** Tiny DOM helpers: typed element lookup and element creation without innerHTML. */

/** The element with this id; throws if the page lacks it (a build mistake, not a runtime case). */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`page is missing #${id}`);
  return el as T;
}

type Attrs = Record<string, string | boolean | undefined>;

/** Creates an element with attributes (true → empty attribute, false/undefined → none) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === true) el.setAttribute(k, "");
    else if (typeof v === "string") el.setAttribute(k, v);
  }
  el.append(...children);
  return el;
}

/** Sets an element's text only when it changed (avoids needless layout work in render loops). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** Sets or removes a data attribute only when it changed. */
export function setData(el: HTMLElement, key: string, value: string): void {
  if (el.dataset[key] !== value) el.dataset[key] = value;
}
