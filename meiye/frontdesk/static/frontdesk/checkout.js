/* Meiye checkout, receipts and the daily close: keyboard shortcuts, the line editor, the barcode input, printing,
   and a preview of what is still due and the change while tenders are typed.
   No inline scripts (CSP: script-src 'self').

   Money here is only a preview for the cashier: amounts are parsed into integer fen (never floating yuan) and
   the service decides. The receipt shows the change the service recorded. */
(function () {
  "use strict";

  // --- Money as integer fen -------------------------------------------------------------------------------------

  var AMOUNT = /^(\d+)(?:\.(\d{1,2}))?$/;

  function toFen(text) {
    var raw = String(text || "").replace(/[¥￥,\s]/g, "");
    if (!raw) { return null; }
    var match = AMOUNT.exec(raw);
    if (!match) { return null; }
    var fen = (match[2] || "").length === 1 ? match[2] + "0" : (match[2] || "00");
    return parseInt(match[1], 10) * 100 + parseInt(fen, 10);
  }

  function plain(fen) {
    var yuan = Math.floor(fen / 100);
    var rest = fen % 100;
    return yuan + "." + (rest < 10 ? "0" : "") + rest;
  }

  function shown(fen) {
    var sign = fen < 0 ? "-" : "";
    var parts = plain(Math.abs(fen)).split(".");
    return sign + "¥" + parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",") + "." + parts[1];
  }

  // --- Tenders: what is still due, the change, "fill the rest" ------------------------------------------------------

  var MONEY_FIELDS = ["stored_value_amount", "card_amount", "wechat_amount", "alipay_amount", "cash_amount"];

  function tenderState(form, skip) {
    var payable = parseInt(form.getAttribute("data-payable-fen"), 10) || 0;
    var perYuan = parseInt(form.getAttribute("data-points-per-yuan"), 10) || 0;
    var paid = 0;
    MONEY_FIELDS.forEach(function (name) {
      var input = form.elements[name];
      if (input && input !== skip) { paid += toFen(input.value) || 0; }
    });
    var points = form.elements.points;
    if (points && points !== skip && perYuan > 0 && /^\d+$/.test(points.value.trim())) {
      var worth = parseInt(points.value, 10) * 100;
      if (worth % perYuan === 0) { paid += worth / perYuan; }
    }
    var change = null;
    var cash = form.elements.cash_amount ? toFen(form.elements.cash_amount.value) : null;
    var received = form.elements.cash_received ? toFen(form.elements.cash_received.value) : null;
    if (cash !== null && received !== null && received >= cash) { change = received - cash; }
    return { due: payable - paid, change: change };
  }

  function updatePreview(form) {
    var preview = form.querySelector(".tender-preview");
    if (!preview) { return; }
    var state = tenderState(form, null);
    var touched = Array.prototype.some.call(form.querySelectorAll("input.money, input[name=points]"), function (i) {
      return i.value.trim() !== "";
    });
    preview.hidden = !touched;
    preview.querySelector("[data-due]").textContent = shown(Math.max(state.due, 0));
    preview.querySelector("[data-change]").textContent = shown(state.change || 0);
    preview.classList.toggle("settled", state.due === 0);
  }

  document.addEventListener("input", function (event) {
    var form = event.target.closest("#tender-form");
    if (form) { updatePreview(form); }
  });

  document.addEventListener("click", function (event) {
    var fill = event.target.closest("[data-fill]");
    if (!fill) { return; }
    var input = document.querySelector(fill.getAttribute("data-fill"));
    var form = input && input.form;
    if (!form) { return; }
    var state = tenderState(form, input);
    input.value = state.due > 0 ? plain(state.due) : "";
    input.focus();
    input.select();
    updatePreview(form);
  });

  // --- Keyboard: F-keys press the button that names them (data-hotkey="F9") ---------------------------------------

  document.addEventListener("keydown", function (event) {
    if (!/^F\d+$/.test(event.key) || event.ctrlKey || event.altKey || event.metaKey) { return; }
    var target = document.querySelector('[data-hotkey="' + event.key + '"]');
    if (!target || target.disabled) { return; }
    event.preventDefault();
    if (target.tagName === "BUTTON" && target.type === "submit" && target.form) {
      if (typeof target.form.requestSubmit === "function") {
        target.form.requestSubmit(target);
      } else {
        target.click();
      }
    } else {
      target.click();
    }
  });

  // Enter in the item search adds the only match, or moves to the first of several.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target.matches("[data-item-search]")) { return; }
    event.preventDefault();
    var buttons = document.querySelectorAll("#item-results [data-item-add]");
    if (buttons.length === 1) {
      buttons[0].click();
    } else if (buttons.length > 1) {
      buttons[0].focus();
    }
  });

  // --- The line editor ------------------------------------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest("[data-toggle]");
    if (!toggle) { return; }
    var row = document.querySelector(toggle.getAttribute("data-toggle"));
    if (!row) { return; }
    var open = row.classList.toggle("collapsed") === false;
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      var first = row.querySelector("input:not([type=hidden]), select");
      if (first) { first.focus(); }
    }
  });

  // --- After htmx changed the bill: back to the scanner or the search, ready for the next item -------------------------

  // A line changed in place keeps its id: once the new lines are in and its editor has closed (the change was
  // saved), focus goes back to that line's "修改" button. (After the swap the form is gone from the page, so
  // the line is noted when the request starts.)
  var focusLine = null;

  document.addEventListener("htmx:beforeRequest", function (event) {
    var source = event.detail.elt;
    focusLine = source && source.matches && source.matches("[data-line-edit]")
      ? source.getAttribute("data-line-edit") : null;
  });

  document.addEventListener("htmx:afterSettle", function () {
    if (focusLine === null) { return; }
    var editor = document.getElementById("edit-" + focusLine);
    var button = document.querySelector('[data-toggle="#edit-' + focusLine + '"]');
    focusLine = null;
    if (editor && button && editor.classList.contains("collapsed")) { button.focus(); }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var source = event.detail.elt;
    var xhr = event.detail.xhr;
    // 400s are swapped in (they carry the errors), so look at the status, not only at "successful".
    if (!event.detail.successful || !source || !xhr || xhr.status < 200 || xhr.status >= 300) { return; }
    var barcode = document.querySelector("[data-barcode]");
    if (source.matches && source.matches("[data-reset-on-success]")) {
      source.reset();
      var errors = document.getElementById("add-line-errors");
      if (errors) { errors.innerHTML = ""; }
      if (barcode) { barcode.focus(); }
    } else if (source.closest && source.closest("#item-results")) {
      var added = document.getElementById("add-line-errors");
      if (added) { added.innerHTML = ""; }
      var search = document.querySelector("[data-item-search]");
      if (search) { search.focus(); search.select(); }
    }
  });

  // Forms that take money are sent once: the button is disabled once the browser has sent the form.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.hasAttribute("data-submit-once") || event.defaultPrevented) { return; }
    window.setTimeout(function () {
      form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
    }, 0);
  });

  // --- Printing ------------------------------------------------------------------------------------------------------

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) { window.print(); }
  });

  document.querySelectorAll("#tender-form").forEach(updatePreview);
})();
