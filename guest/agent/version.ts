// The agent's version, reported under data/xtv/version and recorded in the
// image manifest. Bump it when the agent's behaviour or report changes.
export const AGENT_VERSION = '0.1.0';
