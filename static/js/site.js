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
  // A field filled in again after an error opens with the cursor at its end, to go on typing.
  const field = document.querySelector("input[autofocus]");
  if (field && field.value && ["text", "email", "search"].includes(field.type)) {
    field.setSelectionRange(field.value.length, field.value.length);
  }
})();
