/** This tool's version, written into every manifest as `tool_version` (kept equal to package.json's). */
export const TOOL_VERSION = '0.1.0';
