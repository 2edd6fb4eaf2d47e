/** Context values shared by the drill tests. */
export const VERIFY_SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:pgsteward/verify-server-QrStUv';
export const SMOKE_QUERIES = ['SELECT count(*) FROM orders', 'SELECT max(created_at) FROM orders'];
/** Every drill option at once: a logical drill on a verification server, its own schedule, class, targets and smoke queries. */
export const FULL_VERIFY_CONTEXT = {
  verifySecretArn: VERIFY_SECRET,
  scratchInstanceClass: 'db.t4g.small',
  rtoTargetMinutes: '45',
  rpoTargetMinutes: '1500',
  smokeQueries: JSON.stringify(SMOKE_QUERIES),
  drillSchedule: 'cron(0 3 1 * ? *)',
  drillKind: 'logical',
};
