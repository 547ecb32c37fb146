// Prepaid contracts (预付式消费合同): the signature pad and printing. Loaded by frontdesk/contracts/*.html only.
// The member draws with a finger, stylus or mouse (pointer events); "确认签名" puts the drawing into the form's
// hidden field as a PNG data URL and the form is posted normally. No inline script (strict CSP).
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-print]")) { window.print(); }
  });

  function setUpPad(form) {
    var canvas = form.querySelector("[data-signature-pad]");
    var input = form.querySelector("[data-signature-input]");
    if (!canvas || !input || !canvas.getContext) { return; }
    var ctx = canvas.getContext("2d");
    var drawing = false;
    var drawn = false;
    var last = null;

    // Shown at the width of the form (up to its drawing size); strokes are drawn in canvas pixels.
    canvas.style.width = "100%";
    canvas.style.maxWidth = canvas.width + "px";
    canvas.style.aspectRatio = canvas.width + " / " + canvas.height;
    canvas.style.border = "1px solid #999";
    canvas.style.borderRadius = "4px";
    canvas.style.background = "#fff";
    canvas.style.touchAction = "none";
    canvas.style.cursor = "crosshair";
    canvas.tabIndex = 0;

    ctx.lineWidth = 3;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.strokeStyle = "#111";

    function point(event) {
      var rect = canvas.getBoundingClientRect();
      return {
        x: (event.clientX - rect.left) * (canvas.width / rect.width),
        y: (event.clientY - rect.top) * (canvas.height / rect.height)
      };
    }

    canvas.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      drawing = true;
      last = point(event);
      if (canvas.setPointerCapture) { canvas.setPointerCapture(event.pointerId); }
      ctx.beginPath();
      ctx.arc(last.x, last.y, ctx.lineWidth / 2, 0, Math.PI * 2);
      ctx.fillStyle = ctx.strokeStyle;
      ctx.fill();
      drawn = true;
    });
    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) { return; }
      event.preventDefault();
      var next = point(event);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(next.x, next.y);
      ctx.stroke();
      last = next;
      drawn = true;
    });
    function stop(event) {
      if (!drawing) { return; }
      drawing = false;
      if (canvas.releasePointerCapture && event.pointerId !== undefined) {
        try { canvas.releasePointerCapture(event.pointerId); } catch (e) { /* already released */ }
      }
    }
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
    canvas.addEventListener("pointerleave", stop);

    var clear = form.querySelector("[data-signature-clear]");
    if (clear) {
      clear.addEventListener("click", function () {
        ctx.clearRect(0, 0, canvas.width, canvas.height);
        drawn = false;
        input.value = "";
        canvas.focus();
      });
    }

    form.addEventListener("submit", function () {
      // An empty pad sends nothing: the server answers "please sign" beside the pad.
      input.value = drawn ? canvas.toDataURL("image/png") : "";
    });
  }

  function init() {
    var forms = document.querySelectorAll("[data-signature-form]");
    for (var i = 0; i < forms.length; i++) { setUpPad(forms[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
