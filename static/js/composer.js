// The composer's live preview: a moment after the admin stops typing, the form as it
// stands goes to the preview endpoint, and its answer fills the preview's frames.
// Without this script the form's Preview button gets the same from the server.
(function () {
  "use strict";
  var WAIT_MS = 400;
  var form = document.querySelector("form[data-preview-url]");
  if (!form) {
    return;
  }
  var frames = document.querySelectorAll("[data-preview-html]");
  var text = document.querySelector("[data-preview-text]");
  var timer = null;
  var latest = 0;

  function show(preview) {
    frames.forEach(function (frame) {
      frame.srcdoc = preview.html;
    });
    text.textContent = preview.text;
  }

  function refresh() {
    var asked = ++latest;
    fetch(form.dataset.previewUrl, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("preview: " + response.status);
        }
        return response.json();
      })
      .then(function (preview) {
        // An answer overtaken by a later one is dropped: the frames show the newest.
        if (asked === latest) {
          show(preview);
        }
      })
      .catch(function () {
        // The Preview button still works; the next keystroke tries again.
      });
  }

  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, WAIT_MS);
  });
})();
