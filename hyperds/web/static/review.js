// Review page: keyboard-driven decisions. Every decision submits the server-rendered form, so
// the page (and its frame revision) always reflects what the store holds.
import { editBoxes } from "./boxes.js";

const form = document.getElementById("decide");
const undo = document.getElementById("undo");
const label = document.getElementById("label");
const note = document.getElementById("note");
const bbox = document.getElementById("bbox");

const submit = (action) => form.requestSubmit(document.getElementById(`btn-${action}`));
const selectedRow = () => {
  const checked = document.querySelector("input[name=ann_id]:checked");
  document.querySelectorAll("#annotations tr").forEach((tr) => tr.classList.toggle("selected",
    !!checked && tr.dataset.annId === checked.value));
  return checked;
};
const select = (annId) => {
  const radio = [...document.querySelectorAll("input[name=ann_id]")].find((r) => r.value === annId);
  if (radio) radio.checked = true;
  selectedRow();
};

if (form) {
  selectedRow();
  document.querySelectorAll("input[name=ann_id]").forEach((r) => r.addEventListener("change", selectedRow));
  const svg = document.getElementById("overlay");
  editBoxes(svg, (kind, annId, box) => {
    bbox.value = box.join(",");
    if (kind === "move") { select(annId); submit("move"); return; }
    form.dataset.pending = "box"; // a new box: its label comes next, Enter adds it
    label.placeholder = "label of the new box, then Enter";
    label.focus();
  });
  label.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    submit(form.dataset.pending === "box" ? "box" : "relabel");
  });
  note.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    submit("note");
  });
}

document.addEventListener("keydown", (ev) => {
  if (ev.target.matches("input, textarea, select") || ev.ctrlKey || ev.metaKey || ev.altKey) {
    if (ev.key === "Escape") ev.target.blur();
    return;
  }
  const go = (id) => { const a = document.getElementById(id); if (a) window.location.href = a.href; };
  const keys = {
    a: () => submit("accept"),
    x: () => submit("reject"),
    l: () => { form.dataset.pending = "relabel"; label.focus(); label.select(); },
    n: () => note.focus(),
    j: () => go("next"), ArrowRight: () => go("next"),
    k: () => go("prev"), ArrowLeft: () => go("prev"),
    u: () => { const b = document.getElementById("btn-undo"); if (b && !b.disabled) undo.requestSubmit(b); },
  };
  if (!form && ev.key !== "u") return;
  const act = keys[ev.key];
  if (act) { ev.preventDefault(); act(); }
});
