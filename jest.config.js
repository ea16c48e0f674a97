// Tests are compiled with the sources (npm run build) and run as plain JavaScript from dist/.
module.exports = {
  rootDir: 'dist',
  testMatch: ['<rootDir>/test/**/*.test.js'],
  testEnvironment: '<rootDir>/../test/environment.js',
  transform: {},
  testTimeout: 60000,
  maxWorkers: process.env.CI ? 1 : 2,
};
