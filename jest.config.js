// The mini-program's page tests (tests/miniprogram); the server's suite is pytest.
module.exports = {
  testEnvironment: 'jsdom',
  // ws ships a browser build that only throws; the kit runs in Node under jsdom.
  testEnvironmentOptions: {customExportConditions: ['node', 'node-addons']},
  testMatch: ['<rootDir>/tests/miniprogram/**/*.test.js'],
  testTimeout: 60000,
  maxWorkers: 2,
}
