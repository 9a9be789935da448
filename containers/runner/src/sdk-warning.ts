/**
 * Imported first by the runner's entry (cli.ts), for its side effect only: the AWS SDK for JavaScript
 * v3 prints a NodeVersionSupportWarning (plain text, not a JSON log line) on standard error when the
 * first client is made on a Node.js version it will stop supporting (Node 20, see @aws-sdk/core's
 * emitWarningIfUnsupportedVersion). The runner's standard error is its JSON log; the variable the SDK
 * reads, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true, turns the warning off. ESM evaluates
 * a module's imports in order, so this runs before any module of the runner makes a client.
 */
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
