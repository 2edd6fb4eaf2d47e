import * as fs from 'node:fs';
import * as path from 'node:path';
import { Annotations, Stage } from 'aws-cdk-lib';
import * as ecrAssets from 'aws-cdk-lib/aws-ecr-assets';
import { Construct } from 'constructs';
import type { PgstewardConfig } from './config';
import { CA_BUNDLE_FILE, codeDir } from './function';

/** The committed Dockerfile (pg_dump on provided.al2023 + the binary). */
export const DOCKERFILE = path.resolve(__dirname, '..', 'docker', 'snapshot', 'Dockerfile');
/** The Rust binary the image runs; the same one the `snapshot` zip function runs. */
export const IMAGE_BINARY = 'snapshot';
/** pg_dump in the image (the postgresqlNN package puts it there). */
export const PG_DUMP = '/usr/bin/pg_dump';

export interface SnapshotImage {
  /** The staged build context: Dockerfile, bootstrap, and the CA bundle when there is one. */
  readonly directory: string;
  /** Options both the Lambda and the ECS asset use, so they are one asset (same hash, built once). */
  readonly assetOptions: ecrAssets.DockerImageAssetOptions;
  readonly placeholder: boolean;
  readonly caBundle: boolean;
}

/**
 * Stages the image's build context in the cloud assembly, without Docker:
 * synth only copies this folder into an asset; `cdk deploy` builds it. The
 * context is assembled rather than pointed at target/lambda/snapshot, so that it
 * exists before any cargo build (with the placeholder bootstrap, like the zip
 * functions), never contains more than the image needs, and changes its hash
 * exactly when the binary, the bundle or the Dockerfile change.
 */
export function stageSnapshotImage(scope: Construct, config: PgstewardConfig): SnapshotImage {
  const { dir, placeholder } = codeDir(config.lambdaBuildDir, IMAGE_BINARY);
  const bundle = path.join(dir, CA_BUNDLE_FILE);
  const caBundle = !placeholder && fs.existsSync(bundle);

  const stage = Stage.of(scope);
  if (!stage) throw new Error('the snapshot image must be defined inside an App or Stage');
  const directory = path.join(stage.outdir, 'pgsteward-image-context', IMAGE_BINARY);
  fs.rmSync(directory, { recursive: true, force: true });
  fs.mkdirSync(directory, { recursive: true });
  fs.copyFileSync(DOCKERFILE, path.join(directory, 'Dockerfile'));
  fs.copyFileSync(path.join(dir, 'bootstrap'), path.join(directory, 'bootstrap'));
  fs.chmodSync(path.join(directory, 'bootstrap'), 0o755);
  if (caBundle) fs.copyFileSync(bundle, path.join(directory, CA_BUNDLE_FILE));

  return {
    directory,
    placeholder,
    caBundle,
    assetOptions: {
      platform: config.architecture === 'arm64' ? ecrAssets.Platform.LINUX_ARM64 : ecrAssets.Platform.LINUX_AMD64,
      buildArgs: { PG_MAJOR: String(config.pgMajorVersion) },
    },
  };
}

/** The same warnings as the zip functions: placeholder code, or no CA bundle next to the binary. */
export function warnAboutImage(scope: Construct, image: SnapshotImage, config: PgstewardConfig): void {
  const built = path.join(config.lambdaBuildDir, IMAGE_BINARY);
  if (image.placeholder) {
    Annotations.of(scope).addWarningV2('pgsteward:placeholderCode',
      `${path.join(built, 'bootstrap')} is missing: the logical-backup image gets the placeholder bootstrap, ` +
      'which fails every run. Run `cargo lambda build --release` before deploying.');
  } else if (!image.caBundle) {
    Annotations.of(scope).addWarningV2('pgsteward:missingCaBundle',
      `${path.join(built, CA_BUNDLE_FILE)} is missing: the logical-backup image cannot verify the database's TLS certificate. ` +
      'Copy the RDS CA bundle next to bootstrap before deploying.');
  }
}
