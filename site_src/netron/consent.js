// Loaded by the bundled Netron viewer before index.js (its CSP allows only same-origin scripts).
// A "consent" cookie stops Netron from asking ipinfo.io where the reader is and from blocking on
// a cookie dialog; with version 0.0.0 in its index.html it sends no telemetry either.
document.cookie = "consent=" + Date.now() + ";path=/;max-age=" + (3650 * 24 * 60 * 60) + ";SameSite=Lax";
