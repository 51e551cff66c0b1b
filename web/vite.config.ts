import { defineConfig } from "vite";

// Preact's JSX runtime, no plugin: the app uses nothing but function components and hooks.
export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  // Two pages: the shop (index.html) and the local stack's console (console.html, /__devstack/).
  build: {
    target: "es2022",
    assetsInlineLimit: 0,
    rollupOptions: { input: { shop: "index.html", console: "console.html" } },
  },
});
