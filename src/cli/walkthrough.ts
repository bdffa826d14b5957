/** The walkthrough `mayfly dev` prints: a real flow a newcomer can paste into a shell (needs curl and node). */
import type { Config } from '../config/config.js';

export function walkthrough(cfg: Config, url: string): string {
  const client = cfg.clients[0]!;
  const op = cfg.operators[0]!;
  const td = cfg.trustDomain;
  return `
Mayfly is running in DEV MODE at ${url}  (memory store, dev attestor; nothing here is for production)
  resource-server client: ${client.clientId} / ${client.clientSecret}
  operator token (admin): ${op.token}

Paste this into another shell to walk through one task, end to end:

M=${url}; j() { node -pe "JSON.parse(require('fs').readFileSync(0,'utf8'))$1"; }
# 1. The orchestrator "planner" proves who it is (a dev attestation JWT) and opens a task for alice
PLANNER=$(curl -s $M/dev/attest -H 'content-type: application/json' -d '{"workload":"planner"}' | j .token)
TASK=$(curl -s $M/v1/tasks -H "authorization: Bearer $PLANNER" -H 'content-type: application/json' \\
  -d '{"on_behalf_of":"user:alice@example.com","agents":["spiffe://${td}/agent/coder"],"scopes":["repo:read","repo:write"],"tools":["github.search"],"audiences":["https://api.github.example"],"ttl":"30m","purpose":"fix issue 42"}' | j .task_id)
echo "task: $TASK"
# 2. The agent "coder" exchanges its own attestation for a token bound to that task (RFC 8693)
CODER=$(curl -s $M/dev/attest -H 'content-type: application/json' -d '{"workload":"coder"}' | j .token)
TOKEN=$(curl -s $M/oauth/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\
  -d subject_token=$CODER -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d task_id=$TASK -d scope=repo:read | j .access_token)
echo "$TOKEN" | cut -d. -f2 | node -pe "JSON.stringify(JSON.parse(Buffer.from(require('fs').readFileSync(0,'utf8').trim(),'base64url')),null,1)"
# 3. A resource server asks whether it is active (RFC 7662)
curl -s -u ${client.clientId}:${client.clientSecret} $M/oauth/introspect -d token=$TOKEN; echo
# 4. Asking for more than the task allows is refused, not trimmed
curl -s $M/oauth/token -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \\
  -d subject_token=$CODER -d subject_token_type=urn:ietf:params:oauth:token-type:jwt -d task_id=$TASK -d scope=tickets:read; echo
# 5. The agent gets an X509-SVID for the task from a CSR (DER body; needs openssl): only its key is used
SERIAL=$(openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout /tmp/mayfly-coder.key -subj /CN=anything -outform DER 2>/dev/null \
  | curl -s "$M/v1/certificates?task_id=$TASK" -H "authorization: Bearer $CODER" -H 'content-type: application/pkcs10' --data-binary @- | j .serial)
curl -s $M/v1/certificates/$SERIAL; echo
# 6. The orchestrator closes the task: every credential it produced is revoked at once (token and certificate)
curl -s -X POST $M/v1/tasks/$TASK/close -H "authorization: Bearer $PLANNER"; echo
curl -s -u ${client.clientId}:${client.clientSecret} $M/oauth/introspect -d token=$TOKEN; echo
curl -s $M/v1/certificates/$SERIAL; echo
# 7. The operator reads the audit trail
curl -s "$M/v1/audit?limit=20" -H "authorization: Bearer ${op.token}" | j ".events.map(e => e.type + ' ' + (e.reason || e.task_id || '')).join('\\\\n')"
`;
}
