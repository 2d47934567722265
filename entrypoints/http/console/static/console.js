// The console works without this file; it adds the "select every job on this page" box.
document.addEventListener("change", (event) => {
  if (event.target.id !== "select-all") return;
  for (const box of document.querySelectorAll('input[name="id"][form="bulk"]')) {
    box.checked = event.target.checked;
  }
});
