// Gift cards (礼品卡): print the vouchers of a sale. Loaded only by frontdesk/giftcards/sold.html.
(function () {
  "use strict";
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) { window.print(); }
  });
})();
