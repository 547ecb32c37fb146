// Member cards: the numeric keypad of the payment-password page. The member taps digits into the password
// field (type=password, never echoed); "clear" empties it, "back" removes the last digit.
(function () {
  "use strict";
  function setup(pad) {
    var input = document.getElementById(pad.getAttribute("data-keypad"));
    if (!input) { return; }
    pad.addEventListener("click", function (event) {
      var button = event.target.closest("[data-key]");
      if (!button) { return; }
      var key = button.getAttribute("data-key");
      if (key === "clear") {
        input.value = "";
      } else if (key === "back") {
        input.value = input.value.slice(0, -1);
      } else if (/^[0-9]$/.test(key) && input.value.length < 6) {
        input.value += key;
      }
      input.focus();
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-keypad]").forEach(setup);
  });
})();
