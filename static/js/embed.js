/* The newsletter's sign-up box for any page (EMBED_ORIGINS):
 *   <div data-newsletter-signup data-source="sidebar"></div>
 *   <script src="https://news.example/embed.js" async></script>
 * Each marked element (or, without one, the place of the script) becomes a box that
 * posts to /api/subscribe and shows the answer in place. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = new URL(script.src).origin;

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function field(form, name, label, type, required) {
    var id = "newsletter-" + name + "-" + Math.random().toString(36).slice(2);
    form.appendChild(element("label", { for: id }, label));
    var input = element("input", { id: id, name: name, type: type, autocomplete: name });
    input.required = required;
    form.appendChild(input);
    return input;
  }

  function box(container) {
    var form = element("form", { "class": "newsletter-signup", novalidate: "" });
    var email = field(form, "email", "Email address", "email", true);
    var name = field(form, "name", "Name (optional)", "text", false);
    var message = element("p", { role: "status", "aria-live": "polite" });
    var button = element("button", { type: "submit" }, "Subscribe");
    form.appendChild(button);
    form.appendChild(message);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      button.disabled = true;
      message.textContent = "";
      fetch(base + "/api/subscribe", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          email: email.value, name: name.value, source: container.getAttribute("data-source") || "embed.js"
        })
      }).then(function (response) {
        return response.json().then(function (answer) { return [response.ok, answer]; });
      }).then(function (result) {
        if (result[0]) {
          container.replaceChildren(
            element("p", { role: "status" }, "Success! Now check your email"),
            element("p", {}, "Open the email we sent and press the button behind its link. " +
                             "Nothing after a few minutes? Look in your spam folder.")
          );
        } else {
          message.textContent = result[1].error || "That did not work; please try again.";
          button.disabled = false;
        }
      }).catch(function () {
        message.textContent = "The newsletter could not be reached; please try again later.";
        button.disabled = false;
      });
    });
    container.replaceChildren(form);
  }

  var marked = document.querySelectorAll("[data-newsletter-signup]");
  if (marked.length) {
    Array.prototype.forEach.call(marked, box);
  } else {
    var container = element("div", {});
    script.parentNode.insertBefore(container, script.nextSibling);
    box(container);
  }
})();
