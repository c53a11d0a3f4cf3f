// WebAuthn ceremonies for forms marked data-webauthn="create" or "get". The options come from a
// JSON script block (not executed), so the page needs no inline script under the CSP.
(function () {
  "use strict";
  var b64url = {
    decode: function (s) {
      s = s.replace(/-/g, "+").replace(/_/g, "/");
      while (s.length % 4) s += "=";
      var bin = atob(s), out = new Uint8Array(bin.length);
      for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
      return out.buffer;
    },
    encode: function (buf) {
      var bytes = new Uint8Array(buf), bin = "";
      for (var i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
      return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    }
  };
  function toJSON(cred) {
    if (typeof cred.toJSON === "function") return cred.toJSON();
    var r = cred.response, out = {id: cred.id, rawId: b64url.encode(cred.rawId), type: cred.type,
      clientExtensionResults: cred.getClientExtensionResults(), response: {clientDataJSON: b64url.encode(r.clientDataJSON)}};
    if (r.attestationObject) {
      out.response.attestationObject = b64url.encode(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = b64url.encode(r.authenticatorData);
      out.response.signature = b64url.encode(r.signature);
      if (r.userHandle) out.response.userHandle = b64url.encode(r.userHandle);
    }
    return out;
  }
  function prepare(options, mode) {
    options.challenge = b64url.decode(options.challenge);
    if (mode === "create") options.user.id = b64url.decode(options.user.id);
    var list = mode === "create" ? options.excludeCredentials : options.allowCredentials;
    (list || []).forEach(function (c) { c.id = b64url.decode(c.id); });
    return options;
  }
  var form = document.querySelector("form[data-webauthn]");
  var source = document.getElementById("webauthn-options");
  if (!form || !source || !window.PublicKeyCredential) return;
  var field = form.querySelector("input[name=credential]");
  var mode = form.getAttribute("data-webauthn");
  function options() { return prepare(JSON.parse(source.textContent), mode); }
  function finish(cred) {
    field.value = JSON.stringify(toJSON(cred));
    form.submit();
  }
  // Passkey autofill (conditional mediation, data-webauthn-conditional): the browser offers this
  // site's passkeys in the email address's suggestions; picking one signs in with it.
  var autofill = null, autofillDone = Promise.resolve();
  if (form.hasAttribute("data-webauthn-conditional") && PublicKeyCredential.isConditionalMediationAvailable) {
    autofillDone = PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
      if (!available) return;
      autofill = new AbortController();
      return navigator.credentials.get({publicKey: options(), mediation: "conditional", signal: autofill.signal})
        .then(finish);
    }).catch(function () { /* dismissed or replaced by the button: the page works as before */ });
  }
  form.addEventListener("submit", function (event) {
    if (field.value) return;
    event.preventDefault();
    // one WebAuthn request at a time: the button's replaces the autofill's
    if (autofill) { autofill.abort(); autofill = null; }
    autofillDone.then(function () {
      return mode === "create" ? navigator.credentials.create({publicKey: options()})
                               : navigator.credentials.get({publicKey: options()});
    }).then(finish).catch(function () {
      var err = form.querySelector("[data-webauthn-error]");
      if (err) err.hidden = false;
    });
  });
})();
