import { defineConfig } from "vite";

// Preact's JSX runtime, no plugin: the app uses nothing but function components and hooks.
export default defineConfig({
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { target: "es2022", assetsInlineLimit: 0 },
});
