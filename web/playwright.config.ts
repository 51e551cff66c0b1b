// The browser tests: headless Debian Chromium (no browser download) against a local stack that
// tests/tests/system/browser.rs starts and names in BASE_URL.
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "tests",
  // One flow, step after step, on one stack: the steps share sellers, products and orders.
  workers: 1,
  fullyParallel: false,
  timeout: 240_000,
  expect: { timeout: 20_000 },
  reporter: [["list"]],
  outputDir: process.env.PLAYWRIGHT_OUTPUT ?? "test-results",
  use: {
    baseURL: process.env.BASE_URL ?? "http://127.0.0.1:3000",
    browserName: "chromium",
    launchOptions: {
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
  },
});
