/* The MLOps tab on Airflow's DAG and run pages (mlops.web.runs renders the page; this file only makes it live).
 * It follows Airflow's colour mode (the "light"/"dark" class of the Airflow UI's <html>, else the system's), and
 * opens links from the Airflow UI's own document: Airflow's frame allows no popup and no top navigation. */
"use strict";

function hostDocument() {
  try {
    if (window.top !== window && window.top.document) return window.top.document;
  } catch (error) {
    /* another origin: stay in the frame */
  }
  return null;
}

function applyTheme() {
  const host = hostDocument();
  const classes = host ? host.documentElement.classList : null;
  const theme = classes && classes.contains("dark") ? "dark" : classes && classes.contains("light") ? "light" : null;
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function follow(href, newTab) {
  const url = new URL(href, document.baseURI);
  if (url.protocol !== "http:" && url.protocol !== "https:") return;
  const doc = hostDocument() || document;
  const link = doc.createElement("a");
  link.href = url.href;
  if (newTab) {
    link.target = "_blank";
    link.rel = "noopener";
  }
  doc.body.appendChild(link);
  link.click();
  link.remove();
}

applyTheme();
const host = hostDocument();
if (host) {
  new host.defaultView.MutationObserver(applyTheme).observe(host.documentElement, {
    attributes: true,
    attributeFilter: ["class"],
  });
}
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-follow]");
  if (!link) return;
  event.preventDefault();
  follow(link.getAttribute("href"), link.dataset.follow === "new");
});
