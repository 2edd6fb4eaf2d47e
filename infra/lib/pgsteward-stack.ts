import { Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import type { PgstewardConfig } from './config';
import { HealthCheck } from './health-check';
import { Network } from './network';

export interface PgstewardStackProps extends StackProps {
  readonly config: PgstewardConfig;
}

/**
 * pgsteward for one database: shared network placement, then one construct per
 * task (health check first; snapshot, vacuum sweep, ... come as siblings).
 */
export class PgstewardStack extends Stack {
  readonly network: Network;
  readonly healthCheck: HealthCheck;

  constructor(scope: Construct, id: string, props: PgstewardStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.network = new Network(this, 'Network', { existingVpc: config.existingVpc });
    this.healthCheck = new HealthCheck(this, 'HealthCheck', { config, network: this.network });
  }
}
