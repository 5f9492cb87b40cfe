"""Web pages as web_code samples: settings and tasks (config), rendering in a guarded Chromium (core, browser), the Beam stages (beam); the network guard in guard/."""
