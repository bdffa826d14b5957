/**
 * A fresh EC P-256 key and a PKCS#10 request (RFC 2986) proving possession of it. The broker takes only
 * the key from a CSR and decides everything else, so the subject is empty and there are no attributes.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Name, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

export interface KeyAndCsr {
  privateKey: KeyObject;
  /** PKCS#8 PEM of the private key. */
  keyPem: string;
  csrDer: Buffer;
  csrPem: string;
}

export function newKeyAndCsr(): KeyAndCsr {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const info = new CertificationRequestInfo({
    version: 0,
    subject: new Name(),
    subjectPKInfo: AsnConvert.parse(publicKey.export({ type: 'spki', format: 'der' }), SubjectPublicKeyInfo),
    attributes: new Attributes(),
  });
  const tbs = Buffer.from(AsnConvert.serialize(info));
  const signature = sign('sha256', tbs, { key: privateKey, dsaEncoding: 'der' });
  const csr = new CertificationRequest({
    certificationRequestInfo: info,
    signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }),
    signature: new Uint8Array(signature).buffer,
  });
  const csrDer = Buffer.from(AsnConvert.serialize(csr));
  const b64 = csrDer.toString('base64').replace(/.{1,64}/g, '$&\n');
  return {
    privateKey,
    keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    csrDer,
    csrPem: `-----BEGIN CERTIFICATE REQUEST-----\n${b64}-----END CERTIFICATE REQUEST-----\n`,
  };
}
