import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Validations } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { configFromContext, PgstewardConfig } from '../lib/config';
import { CopyEventForwarderStack, copyEventForwarders } from '../lib/copy-forwarder';
import { PgstewardStack } from '../lib/pgsteward-stack';

/** The feature flags the CLI passes from cdk.json, so tests see what `cdk synth` sees. */
export const CDK_JSON_CONTEXT: Record<string, unknown> =
  JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8')).context;

/** An empty build folder: the tests always synthesize the placeholder code, whatever cargo built. */
export const EMPTY_BUILD_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsteward-build-'));

// Every test app synthesizes under one temp folder, removed when the process exits.
const OUT_ROOT = fs.mkdtempSync(path.join(os.tmpdir(), 'pgsteward-cdk-out-'));
process.on('exit', () => {
  fs.rmSync(OUT_ROOT, { recursive: true, force: true });
  fs.rmSync(EMPTY_BUILD_DIR, { recursive: true, force: true });
});

/** A fresh App with cdk.json's context plus `context`, writing under OUT_ROOT. */
export function newApp(context: Record<string, unknown> = {}): App {
  return new App({
    outdir: fs.mkdtempSync(path.join(OUT_ROOT, 'app-')),
    context: { ...CDK_JSON_CONTEXT, lambdaBuildDir: EMPTY_BUILD_DIR, ...context },
  });
}

/** Context of an existing VPC with a database security group. */
export const EXISTING_VPC_CONTEXT = {
  vpcId: 'vpc-0a1b2c3d4e5f60718',
  availabilityZones: 'us-east-1a,us-east-1b',
  privateSubnetIds: 'subnet-0aaa1111bbbb2222c,subnet-0ddd3333eeee4444f',
  dbSecurityGroupId: 'sg-0123456789abcdef0',
};

export interface Built {
  readonly app: App;
  readonly stack: PgstewardStack;
  readonly config: PgstewardConfig;
  /** With SynthOptions.homeRegion: one per destination that shares, as bin/app.ts adds them. */
  readonly forwarders: CopyEventForwarderStack[];
}

export interface Synth extends Built {
  readonly template: Template;
}

export interface SynthOptions {
  /** Keep the placeholder-code warning (acknowledged by default: the tests build no Rust). */
  readonly keepPlaceholderWarning?: boolean;
  /** Pin the stack to this Region and add the copy-event forwarders, as bin/app.ts does when a destination shares. */
  readonly homeRegion?: string;
}

/** The app and stack, not yet synthesized (the tree can still be changed). */
export function build(context: Record<string, unknown> = {}, options: SynthOptions = {}): Built {
  const app = newApp(context);
  if (!options.keepPlaceholderWarning) {
    Validations.of(app).acknowledge({
      id: 'Annotation::pgsteward:placeholderCode',
      reason: 'tests synthesize the placeholder bootstrap on purpose; function.test.ts checks the warning itself',
    });
  }
  const config = configFromContext(app.node);
  const { homeRegion } = options;
  const stack = new PgstewardStack(app, 'Test', { config, env: homeRegion ? { region: homeRegion } : undefined });
  const forwarders = homeRegion ? copyEventForwarders(app, 'Test', config, homeRegion) : [];
  return { app, stack, config, forwarders };
}

export function synth(context: Record<string, unknown> = {}, options: SynthOptions = {}): Synth {
  const built = build(context, options);
  return { ...built, template: Template.fromStack(built.stack) };
}

type Statement = Record<string, unknown>;

/**
 * The IAM statements that allow `action`, in policies attached to one of `roleIds`
 * (logical ids), or in any policy when no roles are given.
 */
export function statementsAllowing(template: Template, action: string, roleIds?: string[]): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => !roleIds || (p.Properties.Roles as Array<{ Ref: string }>).some((r) => roleIds.includes(r.Ref)))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[])
    .filter((s) => ([] as unknown[]).concat(s.Action).includes(action));
}
