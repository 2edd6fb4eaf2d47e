import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { BackupVerify } from './backup-verify';
import type { PgstewardConfig } from './config';
import { HealthCheck } from './health-check';
import { Network } from './network';
import { PitrRestore } from './pitr-restore';
import { RetentionPrune } from './retention-prune';
import { Snapshot } from './snapshot';
import { VacuumSweep } from './vacuum-sweep';

export interface PgstewardStackProps extends StackProps {
  readonly config: PgstewardConfig;
}

/**
 * pgsteward for one database: shared network placement, then one construct per
 * task (health check, vacuum sweep, snapshot, retention prune, point-in-time restore,
 * verification drill).
 */
export class PgstewardStack extends Stack {
  readonly network: Network;
  readonly healthCheck: HealthCheck;
  readonly vacuumSweep: VacuumSweep;
  readonly snapshot: Snapshot;
  readonly retentionPrune: RetentionPrune;
  readonly pitrRestore: PitrRestore;
  readonly backupVerify: BackupVerify;

  constructor(scope: Construct, id: string, props: PgstewardStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.network = new Network(this, 'Network', { existingVpc: config.existingVpc });
    this.healthCheck = new HealthCheck(this, 'HealthCheck', { config, network: this.network });
    this.vacuumSweep = new VacuumSweep(this, 'VacuumSweep', {
      config,
      network: this.network,
      // Dead tuples over the runbook's critical ratio: a standard sweep right away.
      deadTupleAlarm: this.healthCheck.alarms.DeadTupleRatioWorst.critical,
    });
    this.snapshot = new Snapshot(this, 'Snapshot', { config, network: this.network });
    // Prunes the snapshot task's dumps and writes row archives to the same bucket.
    this.retentionPrune = new RetentionPrune(this, 'RetentionPrune', {
      config, network: this.network, backups: this.snapshot.backups,
    });
    // Checklist reports go to the same bucket, under restore-reports/.
    this.pitrRestore = new PitrRestore(this, 'PitrRestore', {
      config, network: this.network, backups: this.snapshot.backups,
    });
    // Drills read the same bucket's dumps and place scratch copies like restored ones.
    this.backupVerify = new BackupVerify(this, 'BackupVerify', {
      config, network: this.network, backups: this.snapshot.backups, placement: this.pitrRestore.placement,
    });
  }
}
