// ESLint of the viewer's own modules (make lint-js): the recommended rules, browser globals and
// OpenSeadragon, which view.html loads as a classic script. npm packages are never linted.

import js from "@eslint/js";
import { defineConfig, globalIgnores } from "eslint/config";
import globals from "globals";

export default defineConfig([
  globalIgnores(["node_modules/"]),
  {
    files: ["js/**/*.js"],
    extends: [js.configs.recommended],
    languageOptions: {
      sourceType: "module",
      globals: { ...globals.browser, OpenSeadragon: "readonly" },
    },
  },
  {
    files: ["eslint.config.js"],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },
]);
