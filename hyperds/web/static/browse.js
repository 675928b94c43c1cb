// Browse page: box overlays on/off (remembered), and label facet counts fetched after the grid shows.
const grid = document.getElementById("grid");
const toggle = document.getElementById("toggle-boxes");
if (toggle && grid) {
  toggle.addEventListener("change", () => grid.classList.toggle("no-boxes", !toggle.checked));
}
const facets = document.getElementById("facets");
if (facets) {
  fetch(facets.dataset.src, { headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((data) => {
      facets.textContent = `${data.frames} frames: `;
      for (const [label, n] of data.labels) {
        const chip = document.createElement("span");
        chip.className = "chip facet";
        chip.textContent = `${label} ${n}`; // text, never HTML
        facets.append(chip, " ");
      }
    })
    .catch(() => { facets.textContent = ""; });
}
