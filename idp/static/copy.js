// "Copy" buttons (a client secret, an initial access token, a registration as TOML): each button
// names the element whose text it copies in data-copy-target, and a live region near it says that
// it worked. Without JavaScript (or a clipboard) the buttons stay hidden: the text can be selected.
for (const button of document.querySelectorAll("button[data-copy-target]")) {
  const source = document.getElementById(button.dataset.copyTarget);
  const status = document.getElementById(button.dataset.copyStatus);
  if (!source || !navigator.clipboard) continue;
  button.hidden = false;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(source.textContent.trim());
      if (status) status.textContent = button.dataset.copiedText;
    } catch {
      if (status) status.textContent = button.dataset.failedText;
    }
  });
}
