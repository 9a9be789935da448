// A setup file of every test project (vitest.config.ts): after each test file, the folders its tests
// made with testTempDir (test/helpers/temp.ts) are removed, so no run leaves them in the temp folder.
import { afterAll } from 'vitest';
import { removeTestTempDirs } from './temp.js';

afterAll(removeTestTempDirs);
