// The admin's dashboard reloads itself every data-refresh seconds
// (templates/admin/events/dashboard.html), but only while it is shown: a tab in the background
// reloads when it comes back into view. A static file: the admin's CSP allows no inline script.
"use strict";
(function () {
  const board = document.getElementById("switchyard-dashboard");
  const seconds = board ? Number(board.dataset.refresh) : 0;
  if (!(seconds > 0)) {
    return;
  }
  let due = false;
  function reload() {
    if (document.visibilityState === "visible") {
      window.location.reload();
    } else {
      due = true;
    }
  }
  document.addEventListener("visibilitychange", function () {
    if (due && document.visibilityState === "visible") {
      window.location.reload();
    }
  });
  window.setTimeout(reload, seconds * 1000);
})();
