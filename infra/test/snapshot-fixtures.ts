/** Context values shared by the snapshot tests. */
export const WEST_KEY = 'arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
export const BACKUP_KEY = 'arn:aws:kms:us-east-1:123456789012:key/0f0f0f0f-1111-2222-3333-444444444444';
export const COPY_DESTINATIONS = [
  { region: 'us-west-2', kmsKeyId: WEST_KEY, shareWithAccount: '210987654321' },
  { region: 'eu-west-1' },
];
export const COPY_CONTEXT = { copyDestinations: JSON.stringify(COPY_DESTINATIONS) };
/** Every snapshot option at once: Aurora, copies (encrypted, shared, plain), a backup key. */
export const FULL_SNAPSHOT_CONTEXT = { snapshotSource: 'cluster', backupKmsKeyArn: BACKUP_KEY, ...COPY_CONTEXT };
