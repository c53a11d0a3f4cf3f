// The recovery codes page: "Copy codes" and "Print codes", which need JavaScript, so the page draws
// them hidden and this shows them. (Downloading is a plain link: it works without.) The words said
// after copying are the page's own, in its language, from the button's data attributes.
const list = document.getElementById("recovery-codes");
const status = document.getElementById("recovery-codes-status");
const copy = document.querySelector("[data-module='idp-copy-codes']");
const print = document.querySelector("[data-module='idp-print']");
const HIDDEN = "govuk-!-display-none";

if (list && status && copy && navigator.clipboard) {
  copy.classList.remove(HIDDEN);
  copy.addEventListener("click", async () => {
    const codes = Array.from(list.querySelectorAll("code"), (code) => code.textContent.trim());
    try {
      await navigator.clipboard.writeText(codes.join("\n") + "\n");
      status.textContent = copy.dataset.copied;
    } catch {
      status.textContent = copy.dataset.notCopied;
    }
  });
}

if (print && typeof window.print === "function") {
  print.classList.remove(HIDDEN);
  print.addEventListener("click", () => window.print());
}
