// Keys and selection for the review page: j/k move, a approves, r rejects, x selects, ? shows
// the keys. Without this file the page works the same with its buttons and checkboxes, which
// are plain forms; only the keys, "Select all" and the count on the bulk buttons need it.
"use strict";
(function () {
  const header = document.querySelector("header.top");
  const items = Array.from(document.querySelectorAll("article[data-comment-id]"));
  const picks = items.map((item) => item.querySelector('input[name="pick"]'));
  const all = document.getElementById("select-all");
  const bulk = Array.from(document.querySelectorAll('#bulk button[name="action"]'));
  const help = document.getElementById("help");
  const keysButton = document.querySelector("button.keys");
  // One remembered place per list: a page of a filter.
  const view = new URLSearchParams(location.search);
  const KEY = "moderation-review:" + (view.get("reason") || "") + ":" + (view.get("page") || "0");
  let current = 0;

  // Keep a comment scrolled into view clear of the sticky header.
  function fitHeader() {
    document.documentElement.style.scrollPaddingTop = header.offsetHeight + 8 + "px";
  }

  // Make comment ``index`` the current one; ``moved``: by a key (or on load), so it takes the
  // focus and is scrolled into view; otherwise the focus is already inside it.
  function select(index, moved) {
    if (!items.length) return;
    current = Math.max(0, Math.min(items.length - 1, index));
    items.forEach((item, i) => item.classList.toggle("current", i === current));
    if (moved) {
      items[current].focus({ preventScroll: true });
      items[current].scrollIntoView({ block: "nearest" });
    }
    sessionStorage.setItem(KEY, String(current));
  }

  function press(name) {
    const button = items[current] && items[current].querySelector("button." + name);
    if (button) button.click();
  }

  function counted() {
    const chosen = picks.filter((pick) => pick.checked).length;
    bulk.forEach((button) => {
      const verb = button.value === "approve" ? "Approve" : "Reject";
      button.textContent = chosen ? verb + " selected (" + chosen + ")" : verb + " selected";
      button.disabled = chosen === 0;
    });
    if (all) {
      all.checked = chosen > 0 && chosen === picks.length;
      all.indeterminate = chosen > 0 && chosen < picks.length;
    }
  }

  function toggle() {
    const pick = picks[current];
    if (pick) {
      pick.checked = !pick.checked;
      counted();
    }
  }

  function showHelp() {
    if (!help.open) help.showModal();
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (help.open) return; // the dialog has its own keys: Esc and Tab
    const target = event.target;
    if (target.closest('textarea, select, [contenteditable], input:not([type="checkbox"])')) return;
    const actions = {
      j: () => select(current + 1, true),
      k: () => select(current - 1, true),
      a: () => press("approve"),
      r: () => press("reject"),
      x: toggle,
      "?": showHelp,
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  // A click or Tab into a comment (its checkbox, its buttons) makes it the current one.
  items.forEach((item, i) => item.addEventListener("focusin", () => select(i, false)));
  picks.forEach((pick) => pick.addEventListener("change", counted));
  if (all && picks.length) {
    all.closest("label").hidden = false;
    all.addEventListener("change", () => {
      picks.forEach((pick) => (pick.checked = all.checked));
      counted();
    });
  }
  keysButton.hidden = false;
  keysButton.addEventListener("click", showHelp);
  help.querySelector("button.close").addEventListener("click", () => help.close());

  fitHeader();
  window.addEventListener("resize", fitHeader);
  counted();
  // After a ruling the page reloads: stay at the same place in the list, with the heading in
  // view (it is sticky), scrolling only as far as that comment needs.
  select(Number(sessionStorage.getItem(KEY)) || 0, true);
})();
