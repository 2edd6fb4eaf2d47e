/** Context values shared by the restore tests. */
export const APP_SECRETS = [
  'arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/app-AbCdEf',
  'arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/reporting-GhIjKl',
];
/** The database's own storage key (not the backup bucket's). */
export const DB_KEY = 'arn:aws:kms:us-east-1:123456789012:key/2a2a2a2a-3333-4444-5555-666666666666';
/** Every restore option at once: a named subnet group, two security groups, a parameter group, a class, two app secrets, the database's key. */
export const FULL_RESTORE_CONTEXT = {
  restoreSubnetGroup: 'orders-restore',
  restoreSecurityGroupIds: 'sg-0aaaaaaaaaaaaaaa1,sg-0bbbbbbbbbbbbbbb2',
  restoreParameterGroup: 'orders-pg15',
  restoreInstanceClass: 'db.r6g.large',
  appSecretArns: APP_SECRETS.join(','),
  dbKmsKeyArn: DB_KEY,
};
