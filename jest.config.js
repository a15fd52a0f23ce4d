// jest runs the JavaScript tests; the server's suite is pytest.
// tests/miniprogram: the mini-program's pages (jsdom, with the kit's stand-in for wx).
// tests/web: the web app in real Chromium against a real server (each file says
// `@jest-environment node`; tests/web/harness.js).
module.exports = {
  testEnvironment: 'jsdom',
  // ws ships a browser build that only throws; the kit runs in Node under jsdom.
  testEnvironmentOptions: {customExportConditions: ['node', 'node-addons']},
  testMatch: ['<rootDir>/tests/miniprogram/**/*.test.js', '<rootDir>/tests/web/**/*.test.js'],
  testTimeout: 60000,
  maxWorkers: 2,
}
