import { Aws, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type { LambdaArch } from './config';
import type { Network } from './network';

/** The container's only input: the request, as JSON, read once by the binary. */
export const TASK_EVENT_VARIABLE = 'PGSTEWARD_TASK_EVENT';
export const CONTAINER_NAME = 'logical-backup';
/** Fargate size of a dump: pg_dump plus the streaming uploader (no disk: the dump is never stored). */
export const TASK_CPU = 1024;
export const TASK_MEMORY_MIB = 2048;
/** A dump that runs longer is stopped (Step Functions stops the task on a timeout). */
export const DUMP_TIMEOUT = Duration.hours(12);

export const LOGICAL_BACKUP_INPUT_HELP =
  'input must be a logical-backup request: {"action":"logical-backup"} (optionally with "scheduledTime"); ' +
  'it is passed to the task unchanged in PGSTEWARD_TASK_EVENT';

export interface LogicalBackupProps {
  readonly network: Network;
  readonly architecture: LambdaArch;
  readonly image: ecs.ContainerImage;
  /** The same variables as the logical-backup function. */
  readonly environment: Record<string, string>;
}

const not = (condition: sfn.Condition) => sfn.Condition.not(condition);

/**
 * Logical backups of databases too large for a 15-minute Lambda: the same image
 * as a Fargate task in the database's VPC, run by the LogicalBackup state
 * machine (ecs:runTask.sync) with the request in PGSTEWARD_TASK_EVENT.
 */
export class LogicalBackup extends Construct {
  readonly cluster: ecs.Cluster;
  readonly taskDefinition: ecs.FargateTaskDefinition;
  readonly container: ecs.ContainerDefinition;
  readonly stateMachine: sfn.StateMachine;
  readonly logGroup: logs.LogGroup;
  readonly taskLogGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: LogicalBackupProps) {
    super(scope, id);
    const { network } = props;

    this.cluster = new ecs.Cluster(this, 'Cluster', { vpc: network.vpc });
    Validations.of(this.cluster).acknowledge({
      id: 'AwsSolutions-ECS4',
      reason: 'one short-lived batch task per backup run: its logs, exit code and EventBridge run report cover it; ' +
        'Container Insights can be switched on when a fleet of tasks makes per-task metrics worth their cost',
    });

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu: TASK_CPU,
      memoryLimitMiB: TASK_MEMORY_MIB,
      runtimePlatform: {
        cpuArchitecture: props.architecture === 'arm64' ? ecs.CpuArchitecture.ARM64 : ecs.CpuArchitecture.X86_64,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      // Like Lambda: a read-only root and a writable /tmp.
      volumes: [{ name: 'tmp' }],
    });

    this.taskLogGroup = new logs.LogGroup(this, 'TaskLogs', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.container = this.taskDefinition.addContainer('Container', {
      containerName: CONTAINER_NAME,
      image: props.image,
      essential: true,
      readonlyRootFilesystem: true,
      // Fargate may not set the Region the SDK needs (no instance metadata to ask).
      environment: { ...props.environment, AWS_REGION: Aws.REGION },
      logging: ecs.LogDrivers.awsLogs({ logGroup: this.taskLogGroup, streamPrefix: CONTAINER_NAME }),
    });
    this.container.addMountPoints({ sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false });
    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'the variables are identifiers, ARNs, a bucket name and paths, the same as the function\'s; ' +
        'the database password is read at run time from the Secrets Manager secret, never from the environment',
    });

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-logical-backup`,
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      definitionBody: sfn.DefinitionBody.fromChainable(this.definition(network)),
      stateMachineType: sfn.StateMachineType.STANDARD,
      comment: 'pgsteward logical backup (pg_dump -Fc to S3) as a Fargate task, for databases too large for Lambda',
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: false,
    });
    this.acknowledge();
  }

  private definition(network: Network): sfn.IChainable {
    const invalidInput = new sfn.Fail(this, 'InvalidInput', { error: 'InvalidInput', cause: LOGICAL_BACKUP_INPUT_HELP });
    // Rules in order: the type and value tests only see an action that is present.
    const checkInput = new sfn.Choice(this, 'CheckInput')
      .when(not(sfn.Condition.isPresent('$.action')), invalidInput)
      .when(not(sfn.Condition.isString('$.action')), invalidInput)
      .when(not(sfn.Condition.stringEquals('$.action', 'logical-backup')), invalidInput);

    const dump = new tasks.EcsRunTask(this, 'Dump', {
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      launchTarget: new tasks.EcsFargateLaunchTarget({ platformVersion: ecs.FargatePlatformVersion.LATEST }),
      subnets: network.subnets,
      securityGroups: [network.functionSecurityGroup],
      assignPublicIp: false,
      containerOverrides: [{
        containerDefinition: this.container,
        environment: [{ name: TASK_EVENT_VARIABLE, value: sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$')) }],
      }],
      taskTimeout: sfn.Timeout.duration(DUMP_TIMEOUT),
      // The request stays the state's; the stopped task's ARN sits beside it.
      resultSelector: { 'taskArn.$': '$.TaskArn' },
      resultPath: '$.task',
    });
    // A dump that hit the 12-hour limit would hit it again: never retried (said explicitly,
    // as States.TaskFailed below matches every error but States.Timeout, and not every interpreter knows).
    dump.addRetry({ errors: [sfn.Errors.TIMEOUT], maxAttempts: 0 });
    // A container that exits non-zero (and any ECS error: States.TaskFailed is a wildcard): one more try, a minute later.
    dump.addRetry({ errors: [sfn.Errors.TASKS_FAILED], interval: Duration.seconds(60), maxAttempts: 1 });
    const failed = new sfn.Fail(this, 'BackupFailed', { errorPath: '$.error.Error', causePath: '$.error.Cause' });
    dump.addCatch(failed, { errors: [sfn.Errors.ALL], resultPath: '$.error' });

    return checkInput.otherwise(dump.next(new sfn.Succeed(this, 'Done')));
  }

  private acknowledge(): void {
    Validations.of(this.stateMachine).acknowledge({
      id: 'AwsSolutions-SF2',
      reason: 'one ECS task per execution: the execution history and ALL-level logs with execution data show every step, ' +
        'and X-Ray would need account-wide xray:Put* grants for no extra insight',
    });
    Validations.of(this.stateMachine.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecs:StopTask/DescribeTasks (task ARNs are unknown until RunTask) for runTask.sync, and the CloudWatch Logs ' +
        'delivery actions Step Functions logging needs; neither supports a narrower resource here',
    });
    const execRole = this.taskDefinition.executionRole as iam.Role;
    Validations.of(execRole).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken, which the execution role needs to pull the image, has no resource type; ' +
        'the pull actions themselves are scoped to the asset repository',
    });
  }
}
