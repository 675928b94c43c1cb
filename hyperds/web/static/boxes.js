// Box editing on an SVG overlay in normalised [0, 1] coordinates: draw on empty image area,
// drag a box to move it, drag its corner handle to resize. Calls onDone(kind, annId, [x, y, w, h]).
const clamp = (v) => Math.min(1, Math.max(0, v));

export function editBoxes(svg, onDone) {
  let drag = null;
  const point = (ev) => {
    const r = svg.getBoundingClientRect();
    return [clamp((ev.clientX - r.left) / r.width), clamp((ev.clientY - r.top) / r.height)];
  };
  const rectOf = (el) => ["x", "y", "width", "height"].map((k) => parseFloat(el.getAttribute(k)));
  const setRect = (el, [x, y, w, h]) => {
    el.setAttribute("x", x); el.setAttribute("y", y); el.setAttribute("width", w); el.setAttribute("height", h);
  };
  svg.addEventListener("mousedown", (ev) => {
    ev.preventDefault();
    const [px, py] = point(ev);
    const group = ev.target.closest("g.ann");
    if (group) {
      const box = group.querySelector("rect.box");
      drag = { kind: ev.target.classList.contains("handle") ? "resize" : "move", group, box,
               start: [px, py], orig: rectOf(box) };
      return;
    }
    const el = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    el.setAttribute("class", "drawing");
    setRect(el, [px, py, 0, 0]);
    svg.appendChild(el);
    drag = { kind: "draw", box: el, start: [px, py] };
  });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    const [px, py] = point(ev);
    const [sx, sy] = drag.start;
    if (drag.kind === "draw") {
      setRect(drag.box, [Math.min(sx, px), Math.min(sy, py), Math.abs(px - sx), Math.abs(py - sy)]);
    } else if (drag.kind === "move") {
      const [x, y, w, h] = drag.orig;
      setRect(drag.box, [clamp(x + px - sx), clamp(y + py - sy), w, h].map((v, i) =>
        i === 0 ? Math.min(v, 1 - w) : i === 1 ? Math.min(v, 1 - h) : v));
    } else {
      const [x, y] = drag.orig;
      setRect(drag.box, [x, y, Math.max(0.005, px - x), Math.max(0.005, py - y)]);
    }
  });
  window.addEventListener("mouseup", () => {
    if (!drag) return;
    const done = drag;
    drag = null;
    const box = rectOf(done.box).map((v) => Math.round(v * 1e5) / 1e5);
    if (done.kind === "draw" && (box[2] < 0.003 || box[3] < 0.003)) { done.box.remove(); return; }
    if (done.kind !== "draw" && box.every((v, i) => Math.abs(v - done.orig[i]) < 1e-4)) return;
    onDone(done.kind === "draw" ? "box" : "move", done.group ? done.group.dataset.annId : null, box);
  });
}
