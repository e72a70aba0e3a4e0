// Copy buttons: <button data-copy-target="ID" data-copied="…" data-copy-failed="…" hidden>.
// Shown only when this script runs (CSP: script-src 'self', no inline script); copies the
// text of the element named by data-copy-target and says so in the next .copy-status.
(function () {
  "use strict";

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function fallbackCopy(element) {
    selectText(element);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  function report(button, ok) {
    var status = button.parentNode.querySelector(".copy-status");
    var text = ok ? button.getAttribute("data-copied") : button.getAttribute("data-copy-failed");
    if (status) {
      status.textContent = text;
    }
    button.classList.toggle("copied", ok);
  }

  function copy(button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) {
      return;
    }
    var text = target.textContent.trim();
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { report(button, true); },
        function () { report(button, fallbackCopy(target)); }
      );
    } else {
      report(button, fallbackCopy(target));
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var buttons = document.querySelectorAll("button[data-copy-target]");
    for (var i = 0; i < buttons.length; i += 1) {
      var button = buttons[i];
      button.hidden = false;
      button.addEventListener("click", function (event) { copy(event.currentTarget); });
    }
  });
})();
