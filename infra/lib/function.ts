import * as fs from 'node:fs';
import * as path from 'node:path';
import { Annotations, Duration, RemovalPolicy, Stack, Token, Validations } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IConstruct } from 'constructs';
import type { PgstewardConfig } from './config';
import type { Network } from './network';

/** Committed stand-in so synth works before `cargo lambda build`. */
export const PLACEHOLDER_DIR = path.resolve(__dirname, '..', 'placeholder', 'bootstrap');
/** Shipped next to `bootstrap` by the build; the functions verify RDS TLS with it. */
export const CA_BUNDLE_FILE = 'rds-ca-bundle.pem';

export interface RustFunctionProps {
  /** The cargo-lambda binary name: its output is `<lambdaBuildDir>/<binary>/bootstrap`. */
  readonly binary: string;
  readonly description: string;
  readonly config: PgstewardConfig;
  readonly network: Network;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  /** The function connects to PostgreSQL over TLS and needs the CA bundle in its asset. */
  readonly needsCaBundle: boolean;
}

/** Where the function's code comes from, and whether that is the real build. */
export function codeDir(buildDir: string, binary: string): { dir: string; placeholder: boolean } {
  const built = path.join(buildDir, binary);
  return fs.existsSync(path.join(built, 'bootstrap'))
    ? { dir: built, placeholder: false }
    : { dir: PLACEHOLDER_DIR, placeholder: true };
}

/**
 * A Rust Lambda built by cargo-lambda for provided.al2023, placed in the
 * database's VPC, with JSON logs (the Rust runtime reads AWS_LAMBDA_LOG_FORMAT,
 * which Lambda sets from loggingFormat) kept for a month.
 */
export function rustFunction(scope: Construct, id: string, props: RustFunctionProps): lambda.Function {
  const { dir, placeholder } = codeDir(props.config.lambdaBuildDir, props.binary);

  const logGroup = new logs.LogGroup(scope, `${id}Logs`, {
    retention: logs.RetentionDays.ONE_MONTH,
    // Logs of a deleted stack are not worth a name clash on the next deploy.
    removalPolicy: RemovalPolicy.DESTROY,
  });

  const fn = new lambda.Function(scope, id, {
    description: props.description,
    // Code.fromInline is refused for provided.al2023: an asset folder is required.
    runtime: lambda.Runtime.PROVIDED_AL2023,
    handler: 'bootstrap',
    code: lambda.Code.fromAsset(dir),
    architecture: props.config.architecture === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
    memorySize: props.memorySize,
    timeout: props.timeout,
    environment: props.environment,
    loggingFormat: lambda.LoggingFormat.JSON,
    logGroup,
    vpc: props.network.vpc,
    vpcSubnets: props.network.subnets,
    securityGroups: [props.network.functionSecurityGroup],
  });

  if (placeholder) {
    Annotations.of(fn).addWarningV2('pgsteward:placeholderCode',
      `${path.join(props.config.lambdaBuildDir, props.binary, 'bootstrap')} is missing: ` +
      'this synth uses the placeholder bootstrap, which fails every invocation. Run `cargo lambda build --release` before deploying.');
  } else if (props.needsCaBundle && !fs.existsSync(path.join(dir, CA_BUNDLE_FILE))) {
    Annotations.of(fn).addWarningV2('pgsteward:missingCaBundle',
      `${path.join(dir, CA_BUNDLE_FILE)} is missing: the function cannot verify the database's TLS certificate. ` +
      'Copy the RDS CA bundle next to bootstrap before deploying.');
  }

  acknowledgeRoleFindings(fn);
  return fn;
}

/** The AWS-managed Lambda policies CDK attaches to every function role in a VPC. */
export function acknowledgeRoleFindings(fn: lambda.Function): void {
  const role = fn.role;
  if (!role) return;
  Validations.of(role).acknowledge(
    {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
      reason: 'AWS-maintained Lambda logging policy (CreateLogStream/PutLogEvents); the function logs to its own log group',
    },
    {
      id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
      reason: 'AWS-maintained policy for VPC ENIs; the EC2 network-interface actions it grants do not support resource-level scoping',
    },
  );
}

/**
 * An ARN in this stack's account as cdk-nag writes it in a finding id: pseudo parameters
 * while the stack is environment-agnostic, names once bin/app.ts pins its Region (a known
 * Region also makes the partition known). `region` absent: this stack's Region.
 */
export function findingArn(scope: IConstruct, service: string, resource: string, region?: string): string {
  const stack = Stack.of(scope);
  const known = (value: string, pseudo: string) => (Token.isUnresolved(value) ? `<AWS::${pseudo}>` : value);
  return `arn:${known(stack.partition, 'Partition')}:${service}:${region ?? known(stack.region, 'Region')}:` +
    `${known(stack.account, 'AccountId')}:${resource}`;
}
