import { ArnFormat, Aws, Stack, StackProps, Token } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as eventsTargets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { CopyDestination } from './snapshot-config';
import { COPY_FINISHED_EVENT_IDS, snapshotEventPattern } from './snapshot-events';

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

export interface CopyEventForwarderStackProps extends StackProps {
  /** The database whose managed snapshots' copies are forwarded. */
  readonly dbIdentifier: string;
  /** Where the pgsteward stack (and its snapshot function) runs. */
  readonly homeRegion: string;
}

/**
 * One per copy destination that shares with another account, deployed in that Region:
 * RDS emits the copy-finished event there, and the snapshot function can share the copy
 * only once it is available. A rule on this Region's default bus sends those events,
 * unchanged (their `region` still names this Region), to the home Region's default bus,
 * where the pgsteward stack's snapshot rule routes them to the function.
 * Same account as the pgsteward stack: a role is enough, the home bus needs no policy.
 */
export class CopyEventForwarderStack extends Stack {
  readonly rule: events.Rule;
  readonly role: iam.Role;
  /** The home Region's default bus (built from this stack's account: the same account). */
  readonly homeBusArn: string;

  constructor(scope: Construct, id: string, props: CopyEventForwarderStackProps) {
    super(scope, id, props);
    // A cross-Region target needs this Region's name at synth, and must be another Region.
    if (Token.isUnresolved(this.region)) {
      throw new Error(`${id}: a copy-event forwarder needs env.region (the copy destination's Region)`);
    }
    if (this.region === props.homeRegion) {
      throw new Error(`${id}: the copy destination ${this.region} is the home Region; copies go to other Regions`);
    }

    this.homeBusArn = this.formatArn({
      service: 'events', region: props.homeRegion, resource: 'event-bus', resourceName: 'default',
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    this.role = new iam.Role(this, 'ForwardRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
      }),
      description: `EventBridge puts ${props.dbIdentifier}'s snapshot-copy events from ${this.region} on the ${props.homeRegion} default bus`,
    });

    this.rule = new events.Rule(this, 'CopyFinishedRule', {
      description: `pgsteward: a copy of a managed ${props.dbIdentifier} snapshot finished in ${this.region} -> ` +
        `the ${props.homeRegion} default bus, where the snapshot function shares it`,
      eventPattern: snapshotEventPattern(props.dbIdentifier, COPY_FINISHED_EVENT_IDS),
    });
    // The target adds events:PutEvents on exactly this bus to the role; nothing else.
    this.rule.addTarget(new eventsTargets.EventBus(
      events.EventBus.fromEventBusArn(this, 'HomeBus', this.homeBusArn), { role: this.role },
    ));
  }
}

/**
 * One forwarder stack per destination that shares with an account, named after the
 * pgsteward stack. Nothing without sharing: unshared copies need no event from their Region.
 */
export function copyEventForwarders(
  scope: Construct, homeStackId: string, config: { dbIdentifier: string; copyDestinations: CopyDestination[] }, homeRegion: string,
): CopyEventForwarderStack[] {
  return config.copyDestinations.filter((d) => d.shareWithAccount !== undefined).map((d) =>
    new CopyEventForwarderStack(scope, `${homeStackId}-copy-events-${d.region}`, {
      env: { region: d.region },
      dbIdentifier: config.dbIdentifier,
      homeRegion,
      description: `pgsteward: ${config.dbIdentifier}'s snapshot copies finished in ${d.region} -> ${homeRegion}, to be shared`,
    }));
}

/**
 * The Region the pgsteward stack deploys to, when copy destinations share (forwarders need
 * it at synth): context homeRegion, else the cdk CLI's default Region (AWS_REGION or the
 * profile's, the one an environment-agnostic stack would deploy to). bin/app.ts then pins
 * the pgsteward stack to it, so the forwarders and the stack cannot disagree.
 */
export function homeRegionFrom(contextValue: unknown, cliDefault: string | undefined, destinations: CopyDestination[]): string | undefined {
  const shared = destinations.filter((d) => d.shareWithAccount !== undefined).map((d) => d.region);
  if (shared.length === 0) return undefined;
  const fromContext = contextValue === undefined || contextValue === null || contextValue === '' ? undefined : String(contextValue);
  const region = fromContext ?? (cliDefault || undefined);
  if (region === undefined) {
    throw new Error(
      `copyDestinations shares copies made in ${shared.join(', ')}: their copy-finished events are forwarded to the Region ` +
      'pgsteward runs in, which synth must know. Set -c homeRegion=<Region, e.g. us-east-1> ' +
      '(the cdk CLI otherwise passes its default Region, from AWS_REGION or the profile)');
  }
  if (!REGION.test(region)) {
    throw new Error(`context homeRegion ${JSON.stringify(region)} must be a Region name like us-east-1`);
  }
  if (destinations.some((d) => d.region === region)) {
    throw new Error(`copyDestinations lists ${region}, the Region pgsteward runs in (homeRegion); copies go to other Regions`);
  }
  return region;
}
