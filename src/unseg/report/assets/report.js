// unseg report: the paged, sortable image gallery and the slide viewer. No network, no
// libraries but OpenSeadragon (slide pages only). Data comes from JSON blocks in the page.
"use strict";

(function () {
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function format(value) {
    if (value === null || value === undefined) return "n/a";
    if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(3);
    return String(value);
  }

  function compare(a, b) {
    if (a === b) return 0;
    if (a === null || a === undefined) return 1; // missing values last either way
    if (b === null || b === undefined) return -1;
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a).localeCompare(String(b), undefined, { numeric: true });
  }

  // rows: [id, [thumbnail src], [full-size link or null], [values]]
  function gallery(root) {
    const data = JSON.parse(root.querySelector(".gallery-data").textContent);
    const table = root.querySelector("table.rows");
    const controls = root.querySelectorAll(".controls");
    let shown = data.rows.slice();
    let key = -1; // -1: the id, else a value column
    let ascending = true;
    let page = 0;

    const head = el("thead");
    const headRow = el("tr");
    const headers = [];
    const sortable = [["id", -1]].concat(data.values.map((name, i) => [name, i]));
    headRow.appendChild(el("th", { scope: "col" }, "id"));
    data.columns.forEach((name) => headRow.appendChild(el("th", { scope: "col" }, name)));
    sortable.forEach(([name, index]) => {
      const th = index === -1 ? headRow.firstChild : el("th", { scope: "col" });
      const button = el("button", { type: "button", title: "sort by " + name }, name);
      th.textContent = "";
      th.appendChild(button);
      button.addEventListener("click", () => {
        ascending = key === index ? !ascending : index === -1;
        key = index;
        sort();
      });
      if (index !== -1) headRow.appendChild(th);
      headers.push([th, index]);
    });
    head.appendChild(headRow);
    table.appendChild(head);
    const body = el("tbody");
    table.appendChild(body);

    const filter = el("input", { type: "search", placeholder: "filter by id", "aria-label": "filter by id" });
    filter.addEventListener("input", () => {
      const text = filter.value.toLowerCase();
      shown = data.rows.filter((row) => row[0].toLowerCase().includes(text));
      page = 0;
      sort();
    });
    controls[0].appendChild(filter);
    const pagers = Array.from(controls).map((box) => {
      const prev = el("button", { type: "button" }, "\u2039 previous");
      const label = el("span", { class: "page" });
      const next = el("button", { type: "button" }, "next \u203a");
      prev.addEventListener("click", () => { page -= 1; draw(); });
      next.addEventListener("click", () => { page += 1; draw(); });
      box.append(prev, label, next);
      return [prev, label, next];
    });

    function sort() {
      const at = (row) => (key === -1 ? row[0] : row[3][key]);
      shown.sort((a, b) => {
        const order = compare(at(a), at(b));
        const missing = at(a) === null || at(b) === null;
        return ascending || missing ? order : -order;
      });
      headers.forEach(([th, index]) => {
        th.setAttribute("aria-sort", index === key ? (ascending ? "ascending" : "descending") : "none");
      });
      draw();
    }

    function draw() {
      const pages = Math.max(1, Math.ceil(shown.length / data.per_page));
      page = Math.min(Math.max(page, 0), pages - 1);
      body.textContent = "";
      shown.slice(page * data.per_page, (page + 1) * data.per_page).forEach((row) => {
        const tr = el("tr");
        tr.appendChild(el("th", { scope: "row" }, row[0]));
        row[1].forEach((src, i) => {
          const td = el("td", { class: "thumb" });
          if (src === null) { // no such picture for this image (no mask)
            td.textContent = "none";
            tr.appendChild(td);
            return;
          }
          const img = el("img", { src: src, alt: row[0] + ": " + data.columns[i], loading: "lazy" });
          const link = row[2][i];
          if (link) {
            const a = el("a", { href: link, target: "_blank", title: "open the full-size file" });
            a.appendChild(img);
            td.appendChild(a);
          } else {
            td.appendChild(img);
          }
          tr.appendChild(td);
        });
        row[3].forEach((value) => tr.appendChild(el("td", { class: "num" }, format(value))));
        body.appendChild(tr);
      });
      pagers.forEach(([prev, label, next]) => {
        label.textContent = "page " + (page + 1) + " of " + pages + " (" + shown.length + " images)";
        prev.disabled = page === 0;
        next.disabled = page >= pages - 1;
      });
    }

    sort();
  }

  function viewer(root) {
    const data = JSON.parse(root.querySelector(".viewer-data").textContent);
    const osd = OpenSeadragon({
      element: root.querySelector(".osd"),
      drawer: "canvas",
      showNavigationControl: false,
      showNavigator: true,
      navigatorPosition: "BOTTOM_RIGHT",
      maxZoomPixelRatio: 4,
      tileSources: [data.image, { tileSource: data.labels, opacity: data.opacity }],
    });
    const slider = root.querySelector(".opacity");
    slider.addEventListener("input", () => {
      const labels = osd.world.getItemAt(1);
      if (labels) labels.setOpacity(slider.value / 100);
    });
    root.querySelectorAll("button[data-zoom]").forEach((button) => {
      button.addEventListener("click", () => {
        const factor = Number(button.dataset.zoom);
        if (factor) osd.viewport.zoomBy(factor); else osd.viewport.goHome();
      });
    });
    // data-loaded="yes" while both layers are drawn in full (a check in a browser waits for it)
    osd.world.addHandler("add-item", (event) => event.item.addHandler("fully-loaded-change", done));
    function done() {
      const items = [];
      for (let i = 0; i < osd.world.getItemCount(); i += 1) items.push(osd.world.getItemAt(i));
      const loaded = items.length === 2 && items.every((item) => item.getFullyLoaded());
      root.dataset.loaded = loaded ? "yes" : "no";
    }
  }

  document.querySelectorAll(".gallery").forEach(gallery);
  document.querySelectorAll(".viewer").forEach(viewer);
})();
