#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext } from '../lib/config';
import { PgstewardStack } from '../lib/pgsteward-stack';

// Context (cdk.json or `-c key=value`): dbIdentifier, dbSecretArn, eventBusName,
// architecture (x86_64|arm64), lambdaBuildDir, maintenanceWindow, vacuumJobs, snapshotSource, backupKmsKeyArn,
// copyDestinations, pgMajorVersion, and for an existing VPC: vpcId,
// availabilityZones, privateSubnetIds, dbSecurityGroupId. See infra/README.md.
const app = new App();
const config = configFromContext(app.node);

// Environment-agnostic on purpose: no account/region means no lookups, so synth
// needs no credentials. Deploy picks the account and region from the profile.
new PgstewardStack(app, `pgsteward-${config.dbIdentifier}`, {
  config,
  description: `pgsteward maintenance functions for ${config.dbIdentifier}`,
});

// cdk-nag 3.x is a policy-validation plugin: synth fails on an unacknowledged finding.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
