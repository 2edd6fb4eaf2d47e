#!/usr/bin/env node
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { configFromContext } from '../lib/config';
import { copyEventForwarders, homeRegionFrom } from '../lib/copy-forwarder';
import { PgstewardStack } from '../lib/pgsteward-stack';

// Context (cdk.json or `-c key=value`): dbIdentifier, dbSecretArn, eventBusName,
// architecture (x86_64|arm64), lambdaBuildDir, maintenanceWindow, vacuumJobs, snapshotSource, backupKmsKeyArn,
// copyDestinations ([{region, kmsKeyId?, shareWithAccount?}]), homeRegion (only with shareWithAccount),
// pgMajorVersion, retentionPolicy, archiveRules, scratchMaxAgeHours, restoreSubnetGroup, restoreSecurityGroupIds,
// restoreParameterGroup, restoreInstanceClass, appSecretArns, dbKmsKeyArn, verifySecretArn, scratchInstanceClass,
// rtoTargetMinutes, rpoTargetMinutes, smokeQueries, drillSchedule, drillKind, and for an existing VPC: vpcId,
// availabilityZones, privateSubnetIds, dbSecurityGroupId. See infra/README.md.
const app = new App();
const config = configFromContext(app.node);
const name = `pgsteward-${config.dbIdentifier}`;

// A destination with shareWithAccount needs a forwarder stack in its Region (RDS emits the
// copy-finished event there), and that stack needs the home Region at synth.
const homeRegion = homeRegionFrom(app.node.tryGetContext('homeRegion'), process.env.CDK_DEFAULT_REGION, config.copyDestinations);

// Environment-agnostic on purpose: no account/region means no lookups, so synth
// needs no credentials. Deploy picks the account and region from the profile.
// With forwarders, the Region is pinned to the one they send to; the account never is
// (every stack goes to the deploying account, and the forwarders' target is in it).
new PgstewardStack(app, name, {
  config,
  env: homeRegion ? { region: homeRegion } : undefined,
  description: `pgsteward maintenance functions for ${config.dbIdentifier}`,
});
if (homeRegion) copyEventForwarders(app, name, config, homeRegion);

// cdk-nag 3.x is a policy-validation plugin: synth fails on an unacknowledged finding.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
