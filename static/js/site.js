/* The site's own behaviour for keyboard users (a file of its own: the Content-Security-Policy
   runs no inline script). */
(() => {
  // The folded menu (on a phone) closes on Escape, back to its button, and when the keyboard's
  // focus moves on past it.
  const menu = document.getElementById("nav");
  const toggler = document.querySelector('[data-bs-target="#nav"]');
  if (menu && toggler) {
    const close = () => bootstrap.Collapse.getOrCreateInstance(menu, { toggle: false }).hide();
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && menu.classList.contains("show")) {
        close();
        toggler.focus();
      }
    });
    menu.addEventListener("focusout", (event) => {
      const next = event.relatedTarget;
      if (menu.classList.contains("show") && next && !menu.contains(next) && next !== toggler) {
        close();
      }
    });
  }
  // A form is sent once: a second click (or Enter) while the answer to the first is on its way
  // would send it again, and the answer to the second ("activated already", "this link is no
  // longer valid") would hide what the first did. Free again after a while (no answer came:
  // the network) and on a page the browser shows again from its history (Back).
  const SENT_FOR = 10000;
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.method !== "post") return; // a search may be sent again at once
    const sent = Number(form.dataset.sent || 0);
    if (Date.now() - sent < SENT_FOR) {
      event.preventDefault();
      return;
    }
    form.dataset.sent = String(Date.now());
  });
  window.addEventListener("pageshow", () => {
    document.querySelectorAll("form[data-sent]").forEach((form) => delete form.dataset.sent);
  });
  // A page sent in answer to a form is, in the browser's history, the page at its address (or
  // the fuller one it names: a step of the activation): Back and Reload ask for it again
  // rather than send the form again (Chrome's "Confirm Form Resubmission" and its error page).
  const own = document.querySelector('link[rel="canonical"]');
  history.replaceState(history.state, "", own ? own.href : location.href);
  const field = document.querySelector("input[autofocus]");
  // The page opens on that field: a screen reader reads, with it, the page's warnings (an alert
  // already there when the page loads is not reliably announced).
  const alerts = [...document.querySelectorAll('main > .alert[role="alert"]')].map((a) => a.id);
  if (field && alerts.length) {
    const described = (field.getAttribute("aria-describedby") || "").split(" ").filter(Boolean);
    field.setAttribute("aria-describedby", [...alerts, ...described].join(" "));
  }
  // A field filled in again after an error opens with the cursor at its end, to go on typing.
  if (field && field.value && ["text", "email", "search"].includes(field.type)) {
    field.setSelectionRange(field.value.length, field.value.length);
  }
})();
