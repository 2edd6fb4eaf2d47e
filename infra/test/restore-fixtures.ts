/** Context values shared by the restore tests. */
export const APP_SECRETS = [
  'arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/app-AbCdEf',
  'arn:aws:secretsmanager:us-east-1:123456789012:secret:orders/reporting-GhIjKl',
];
/** Every restore option at once: a named subnet group, two security groups, a parameter group, a class, two app secrets. */
export const FULL_RESTORE_CONTEXT = {
  restoreSubnetGroup: 'orders-restore',
  restoreSecurityGroupIds: 'sg-0aaaaaaaaaaaaaaa1,sg-0bbbbbbbbbbbbbbb2',
  restoreParameterGroup: 'orders-pg15',
  restoreInstanceClass: 'db.r6g.large',
  appSecretArns: APP_SECRETS.join(','),
};
