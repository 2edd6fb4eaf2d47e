/** Context values shared by the retention tests. */
export const ARCHIVE_RULES = [
  { table: 'public.audit_events', column: 'timestamp', olderThanDays: 90, archive: true },
  { table: 'public.workflows', column: 'updated_at', olderThanDays: 30, where: "status IN ('completed','failed')", archive: false },
];
/** Every retention option at once: a partial policy (the rest filled in), archive rules, a scratch age. */
export const FULL_RETENTION_CONTEXT = {
  retentionPolicy: '{"days":7,"weeks":4,"months":12,"maxAgeDays":400}',
  archiveRules: JSON.stringify(ARCHIVE_RULES),
  scratchMaxAgeHours: '12',
};
