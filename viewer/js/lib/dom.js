// @ts-check
// Building page elements in one expression, the same way on every page: el(tag, props, ...children).

/**
 * A new element. `props` are set as properties (`className`, `href`, `textContent`, ...), except
 * `dataset`, whose entries become data-* attributes, and names with a dash (`aria-label`,
 * `data-testid`), which are set as attributes. `children` (nodes or text) are appended in order.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {{dataset?: Record<string, string>, [name: string]: any}} [props]
 * @param {...(Node | string)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, { dataset = {}, ...props } = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name.includes("-")) node.setAttribute(name, String(value));
    else node[name] = value;
  }
  Object.assign(node.dataset, dataset);
  node.append(...children);
  return node;
}
