// Keyboard moves for the review page: j/k move, a approves, r rejects. Without this file the
// page works the same with its buttons, which are plain forms.
"use strict";
(function () {
  const items = Array.from(document.querySelectorAll("[data-comment-id]"));
  if (!items.length) return;
  const KEY = "moderation-review-index";
  let current = 0;

  function select(index) {
    current = Math.max(0, Math.min(items.length - 1, index));
    items.forEach((item, i) => item.classList.toggle("current", i === current));
    items[current].focus({ preventScroll: true });
    items[current].scrollIntoView({ block: "nearest" });
    sessionStorage.setItem(KEY, String(current));
  }

  function press(name) {
    const button = items[current].querySelector("button." + name);
    if (button) button.click();
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    if (event.target.closest("input, textarea, select")) return;
    const actions = {
      j: () => select(current + 1),
      k: () => select(current - 1),
      a: () => press("approve"),
      r: () => press("reject"),
    };
    const action = actions[event.key];
    if (action) {
      event.preventDefault();
      action();
    }
  });

  // After a ruling the page reloads; stay at the same place in the list.
  select(Number(sessionStorage.getItem(KEY)) || 0);
})();
