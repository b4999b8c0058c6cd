"""The EBD codec (应急广播数据包, GY/T 384/385): packet model, XML writer and reader, tar packages, SM2/SM3 signatures, identifiers, key files. Pure: never does network I/O."""
